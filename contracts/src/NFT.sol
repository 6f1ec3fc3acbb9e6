// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title NFT
/// @notice Minimal, self-contained ERC-721 collection used by Kestrel's tests
///         and benchmarks (the "nft" workload). Anyone may mint: `mint(to)`
///         gives `to` the next id, counting from 0, so that every mint reads
///         and writes the same counter.
/// @dev Storage layout (relied on by Go code that writes genesis storage):
///      slot 0 name, slot 1 symbol (short strings), slot 2 nextId (also the
///      total supply: nothing is burnt), slot 3 ownerOf (uint256 => address),
///      slot 4 balanceOf (address => uint256), slot 5 getApproved
///      (uint256 => address), slot 6 isApprovedForAll (address => address =>
///      bool). Failures revert with `Error(string)` reasons.
contract NFT {
    bytes4 private constant ON_RECEIVED = 0x150b7a02;

    string public name;
    string public symbol;
    uint256 public nextId;

    mapping(uint256 => address) internal _owners;
    mapping(address => uint256) internal _balances;
    mapping(uint256 => address) internal _tokenApprovals;
    mapping(address => mapping(address => bool)) internal _operatorApprovals;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
    }

    /// @notice ERC-165: ERC-165 itself (0x01ffc9a7) and ERC-721 (0x80ac58cd).
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == 0x01ffc9a7 || interfaceId == 0x80ac58cd;
    }

    /// @notice Number of tokens minted so far.
    function totalSupply() external view returns (uint256) {
        return nextId;
    }

    /// @notice Number of tokens `owner` holds.
    function balanceOf(address owner) external view returns (uint256) {
        require(owner != address(0), "NFT: balance of the zero address");
        return _balances[owner];
    }

    /// @notice Owner of token `tokenId`; reverts for a token not minted.
    function ownerOf(uint256 tokenId) public view returns (address owner) {
        owner = _owners[tokenId];
        require(owner != address(0), "NFT: nonexistent token");
    }

    /// @notice Account approved to move token `tokenId`, or zero.
    function getApproved(uint256 tokenId) external view returns (address) {
        ownerOf(tokenId);
        return _tokenApprovals[tokenId];
    }

    /// @notice Whether `operator` may move every token of `owner`.
    function isApprovedForAll(address owner, address operator) external view returns (bool) {
        return _operatorApprovals[owner][operator];
    }

    /// @notice Mints the next id to `to`; anyone may call it.
    function mint(address to) external returns (uint256 id) {
        require(to != address(0), "NFT: mint to the zero address");
        id = nextId++;
        _owners[id] = to;
        unchecked {
            // Cannot overflow: there are fewer tokens than 2**256.
            _balances[to] += 1;
        }
        emit Transfer(address(0), to, id);
    }

    /// @notice Lets `to` move token `tokenId` (zero clears the approval); the
    ///         caller must own the token or be an operator of its owner.
    function approve(address to, uint256 tokenId) external {
        address owner = ownerOf(tokenId);
        require(msg.sender == owner || _operatorApprovals[owner][msg.sender], "NFT: not owner nor operator");
        _tokenApprovals[tokenId] = to;
        emit Approval(owner, to, tokenId);
    }

    /// @notice Lets `operator` move all of the caller's tokens, or revokes it.
    function setApprovalForAll(address operator, bool approved) external {
        require(operator != msg.sender, "NFT: approve to caller");
        _operatorApprovals[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    /// @notice Moves token `tokenId` from `from` to `to`; the caller must be
    ///         the owner, approved for the token, or an operator of the owner.
    function transferFrom(address from, address to, uint256 tokenId) public {
        require(to != address(0), "NFT: transfer to the zero address");
        address owner = ownerOf(tokenId);
        require(owner == from, "NFT: transfer from incorrect owner");
        require(
            msg.sender == owner || _tokenApprovals[tokenId] == msg.sender || _operatorApprovals[owner][msg.sender],
            "NFT: caller not owner nor approved"
        );
        delete _tokenApprovals[tokenId];
        unchecked {
            // The owner holds the token, so its balance is positive, and the
            // sum of all balances is the number of tokens.
            _balances[from] -= 1;
            _balances[to] += 1;
        }
        _owners[tokenId] = to;
        emit Transfer(from, to, tokenId);
    }

    /// @notice transferFrom, then, when `to` is a contract, requires it to
    ///         accept the token with onERC721Received.
    function safeTransferFrom(address from, address to, uint256 tokenId) external {
        safeTransferFrom(from, to, tokenId, "");
    }

    /// @notice safeTransferFrom with `data` passed to onERC721Received.
    function safeTransferFrom(address from, address to, uint256 tokenId, bytes memory data) public {
        transferFrom(from, to, tokenId);
        if (to.code.length > 0) {
            // onERC721Received(address,address,uint256,bytes), called without
            // an interface declaration (compile.js writes an artifact per
            // contract, and an interface has no bytecode).
            (bool ok, bytes memory ret) = to.call(abi.encodeWithSelector(ON_RECEIVED, msg.sender, from, tokenId, data));
            require(ok && ret.length == 32 && bytes4(ret) == ON_RECEIVED, "NFT: transfer to non ERC721Receiver");
        }
    }
}
